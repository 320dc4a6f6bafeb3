from ibest.backbone.serve import serve
from services.gateway.service import SPEC

serve(SPEC)
