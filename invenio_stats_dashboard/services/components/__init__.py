"""Service components recording community membership changes."""

from .components import (
    CommunityAcceptedEventComponent,
    CommunityCustomFieldsDefaultsComponent,
    RecordCommunityEventComponent,
    RecordCommunityEventTrackingComponent,
)

__all__ = (
    "CommunityAcceptedEventComponent",
    "CommunityCustomFieldsDefaultsComponent",
    "RecordCommunityEventComponent",
    "RecordCommunityEventTrackingComponent",
)
