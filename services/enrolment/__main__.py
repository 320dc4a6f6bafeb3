from ibest.backbone.serve import serve
from services.enrolment.service import SPEC

serve(SPEC)
