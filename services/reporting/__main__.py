from ibest.backbone.serve import serve
from services.reporting.service import SPEC

serve(SPEC)
