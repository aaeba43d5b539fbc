from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("carehub.api_urls")),
    # The patient's own preferences page, reached by a signed link (no login).
    path("preferences/", include("consent.urls")),
    # The SMS gateway's signed delivery-status and inbound-message webhooks.
    path("webhooks/", include("outreach.urls")),
]
