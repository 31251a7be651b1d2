"""Settings shared by every test package.

Hypothesis: no per-example deadline and no "too slow" health check. The tests
run two at a time on a shared 2-core machine next to lab tests that fill both
cores; a slow example there says nothing about the code (docs/design.md §7.1: speed goals
live in bench/, never as timed assertions in tests).
"""

from hypothesis import HealthCheck, settings

settings.register_profile("vgw", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("vgw")
