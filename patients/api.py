from rest_framework import serializers, viewsets
from rest_framework.response import Response

from audit.models import AccessLog
from audit.services import log_access
from carehub.errors import DomainError
from patients import selectors
from patients.models import Patient


class PatientSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Patient
        fields = (
            "id",
            "organization",
            "mrn",
            "source_id",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "phone",
            "email",
            "address_line",
            "city",
            "state",
            "postal_code",
            "preferred_language",
            "timezone",
            "status",
            "attributed_provider",
            "attributed_site",
            "payer_program",
            "member_id",
        )


class PatientViewSet(viewsets.ReadOnlyModelViewSet):
    """Patients of the caller's organizations. `?q=` searches like the admin box."""

    serializer_class = PatientSerializer

    def get_queryset(self):
        term = self.request.query_params.get("q", "")
        if "\x00" in term:
            raise DomainError("q contains a NUL character")
        queryset = selectors.patients_for_list(self.request.user)
        return selectors.search_patients(queryset, term)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        log_access(request, page, action=AccessLog.Action.LIST, channel=AccessLog.Channel.API)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        patient = self.get_object()
        log_access(request, [patient], action=AccessLog.Action.VIEW, channel=AccessLog.Channel.API)
        return Response(self.get_serializer(patient).data)
