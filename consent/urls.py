from django.urls import path

from consent.views import self_service_preferences

app_name = "consent"
urlpatterns = [
    path("<str:token>/", self_service_preferences, name="self-service"),
]
