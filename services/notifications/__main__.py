from ibest.backbone.serve import serve
from services.notifications.service import SPEC

serve(SPEC)
