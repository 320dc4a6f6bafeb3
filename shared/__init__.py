"""The iBeST event contract, version 1: what trust systems and our services exchange.

Everything here is pure data and validation (Pydantic v2, no I/O), so every service and
every integrator test can import it. `shared.envelope.parse_event` is the single entry
point that turns bytes from the wire into a typed, validated event.
"""
