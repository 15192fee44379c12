from rest_framework import serializers

from apps.accounts.models import ApiToken, User


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "role", "display_name", "email", "is_active", "date_joined"]


class UserCreateSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[A-Za-z0-9_.@+-]{1,150}$")
    role = serializers.CharField(max_length=32)
    # Strength is checked by the service against AUTH_PASSWORD_VALIDATORS (the one rule for every path).
    password = serializers.CharField(max_length=4096, required=False, write_only=True)
    email = serializers.EmailField(required=False, default="")
    display_name = serializers.CharField(max_length=200, required=False, default="")


class UserUpdateSerializer(serializers.Serializer):
    role = serializers.CharField(max_length=32, required=False)
    is_active = serializers.BooleanField(required=False)


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "key_prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]


class TokenIssueSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="")
    lifetime_days = serializers.IntegerField(min_value=1, max_value=365, required=False)


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once; store it now.")
    detail = ApiTokenSerializer()
