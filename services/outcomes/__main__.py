from ibest.backbone.serve import serve
from services.outcomes.service import SPEC

serve(SPEC)
