"""Running declared schedules: reconcile them when a worker starts, pause, resume, trigger and backfill.

The rules are pure (`ironflow_py.schedule`, `ironflow_py.schedule_workflow`); this is the shell an
operator or application calls, as `service.schedules` (design/schedules.md).
"""

from ironflow_py.scheduling._control import ScheduleControl, ScheduleInfo

__all__ = ["ScheduleControl", "ScheduleInfo"]
