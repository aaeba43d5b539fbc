import django.db.models.deletion
from django.db import migrations, models

from carehub.migration_ops import key_indexes_dropped


class Migration(migrations.Migration):
    dependencies = [
        ("gaps", "0009_gap_result_found_by_key"),
        ("patients", "0007_clinical_keys_without_duplicate_indexes"),
    ]

    operations = [
        key_indexes_dropped(
            [
                migrations.AlterField(
                    model_name="measureresult",
                    name="measure",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="results",
                        to="gaps.measure",
                    ),
                ),
            ],
            [
                (
                    "gaps_measureresult_measure_id_d0216132",
                    "gaps_measureresult",
                    "measure_id",
                ),
            ],
        ),
        migrations.AlterField(
            model_name="measureresult",
            name="evaluation_run",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="gaps.evaluationrun",
            ),
        ),
        migrations.AlterField(
            model_name="measureresult",
            name="organization",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="patients.organization",
            ),
        ),
    ]
