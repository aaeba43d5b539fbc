from django.views.debug import SafeExceptionReporterFilter


class PhiSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports without request bodies or frame locals: either can hold PHI."""

    def is_active(self, request) -> bool:
        return True

    def get_post_parameters(self, request):
        if request is None:
            return {}
        return dict.fromkeys(request.POST, self.cleansed_substitute)

    def get_traceback_frame_variables(self, request, tb_frame):
        return [("(locals hidden)", self.cleansed_substitute)]
