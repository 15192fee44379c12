from rest_framework import serializers

from apps.uploads.models import UploadFile, UploadItem, UploadSession


class UploadSessionSerializer(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    files_pending = serializers.SerializerMethodField()

    class Meta:
        model = UploadSession
        fields = [
            "id", "label", "status", "created_by", "created_at", "finished_at", "last_activity_at", "files_received", "bytes_received",
            "files_done", "files_pending", "items_stored", "items_duplicate", "items_failed",
        ]

    def get_files_pending(self, session: UploadSession) -> int:
        return session.files_received - session.files_done


class UploadSessionOpenSerializer(serializers.Serializer):
    # The API's field is called "label", which the stubs also type as Field.label (a display string).
    label = serializers.CharField(max_length=200, required=False, default="")  # type: ignore[assignment]


class UploadFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = UploadFile
        fields = ["id", "name", "size", "status", "error_code", "error_detail", "received_at"]


class UploadItemSerializer(serializers.ModelSerializer):
    file = serializers.CharField(source="upload_file.name", read_only=True)

    class Meta:
        model = UploadItem
        fields = [
            "id", "file", "member_name", "status", "failure_code", "failure_detail", "sop_instance_uid",
            "study_instance_uid", "processed_at",
        ]
