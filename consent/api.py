"""A patient's consents, preferences and current contact decisions; preference changes.

    GET   /api/patients/{id}/consents/
    GET   /api/patients/{id}/preferences/
    PATCH /api/patients/{id}/preferences/          {"reason": "...", <changes>}
    GET   /api/patients/{id}/contact-decisions/?content_class=general&at=<ISO instant>

Scoped like admin: a patient outside the caller's organizations is 404. Reads are logged.
"""

from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AccessLog
from audit.services import log_access
from carehub.errors import DomainError
from consent import services
from consent.models import ChangePath, Channel, Consent, ContactPreference, ContentClass
from consent.policy import check_all_channels
from patients.models import Patient
from patients.selectors import patients_for


class ConsentSerializer(serializers.ModelSerializer):
    in_force = serializers.SerializerMethodField()

    class Meta:
        model = Consent
        fields = (
            "kind",
            "proxy_name",
            "status",
            "in_force",
            "method",
            "captured_by",
            "path",
            "effective_at",
            "expires_at",
            "evidence",
            "changed_at",
        )

    def get_in_force(self, consent: Consent) -> bool:
        return consent.in_force(self.context["now"])


class PreferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactPreference
        fields = (
            "preferred_channels",
            "opted_out_channels",
            "portal_only",
            "do_not_contact",
            "preferred_language",
            "contact_days",
            "contact_start",
            "contact_end",
            "timezone",
            "path",
            "changed_at",
        )


class PreferenceChangeSerializer(serializers.Serializer):
    """Parses a PATCH; consent.services.update_preferences validates the meaning."""

    reason = serializers.CharField(max_length=200)
    portal_only = serializers.BooleanField(required=False)
    do_not_contact = serializers.BooleanField(required=False)
    opted_out_channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.values), required=False
    )
    preferred_channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.values), required=False
    )
    contact_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False
    )
    contact_start = serializers.TimeField(required=False, allow_null=True)
    contact_end = serializers.TimeField(required=False, allow_null=True)
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    preferred_language = serializers.CharField(required=False, allow_blank=True, max_length=16)


class PatientContactView(APIView):
    """Base: the patient comes from the caller's scope; the model gives the permissions."""

    def patient(self) -> Patient:
        try:
            return patients_for(self.request.user).get(pk=self.kwargs["patient_id"])
        except Patient.DoesNotExist:
            raise Http404("No such patient") from None

    def log_read(self, patient: Patient) -> None:
        log_access(
            self.request, [patient], action=AccessLog.Action.VIEW, channel=AccessLog.Channel.API
        )


class ConsentsView(PatientContactView):
    queryset = Consent.objects.none()

    def get(self, request, patient_id: int):
        patient = self.patient()
        consents = Consent.objects.filter(patient_id=patient.pk).order_by("kind", "proxy_name")
        self.log_read(patient)
        context = {"now": timezone.now()}
        return Response(ConsentSerializer(consents, many=True, context=context).data)


class PreferencesView(PatientContactView):
    queryset = ContactPreference.objects.none()

    def get(self, request, patient_id: int):
        patient = self.patient()
        self.log_read(patient)
        preference = ContactPreference.objects.filter(patient_id=patient.pk).first()
        if preference is None:
            preference = ContactPreference(patient=patient, path=ChangePath.SYSTEM)
        return Response(PreferenceSerializer(preference).data)

    def patch(self, request, patient_id: int):
        patient = self.patient()
        changes = PreferenceChangeSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        data = dict(changes.validated_data)
        reason = data.pop("reason")
        preference = services.update_preferences(
            patient, actor=request.user, path=ChangePath.API, reason=reason, **data
        )
        return Response(PreferenceSerializer(preference).data)


class ContactDecisionsView(PatientContactView):
    queryset = ContactPreference.objects.none()

    def get(self, request, patient_id: int):
        patient = self.patient()
        content_class = request.query_params.get("content_class", ContentClass.GENERAL)
        if content_class not in ContentClass.values:
            raise DomainError(
                f"Unknown content class {content_class!r}; expected one of "
                f"{', '.join(ContentClass.values)}"
            )
        at = timezone.now()
        if "at" in request.query_params:
            try:
                at = parse_datetime(request.query_params["at"])
            except ValueError:
                at = None
            # The policy reads the instant in the patient's time zone: years 1 and 9999 with
            # an extreme offset overflow there, and centuries away are never a real question.
            if at is None or timezone.is_naive(at) or not 1900 <= at.year <= 2999:
                raise DomainError(
                    "at must be an ISO 8601 instant with its offset, between 1900 and 2999"
                )
        decisions = check_all_channels(patient, at=at)
        self.log_read(patient)
        return Response(
            {
                "patient": patient.pk,
                "at": at.isoformat(),
                "content_class": content_class,
                "decisions": {
                    channel: decisions[(channel, content_class)].as_dict()
                    for channel in Channel.values
                },
            }
        )
