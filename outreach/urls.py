from django.urls import path

from outreach import webhooks

app_name = "outreach"
urlpatterns = [
    path("sms/status", webhooks.sms_status, name="sms-status"),
    path("sms/inbound", webhooks.sms_inbound, name="sms-inbound"),
]
