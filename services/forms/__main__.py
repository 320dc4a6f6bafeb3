from ibest.backbone.serve import serve
from services.forms.service import SPEC

serve(SPEC)
