"""Every mapped class in one import, so ``Base.metadata`` is complete."""

from shellflow.model.audit_table import AuditRow
from shellflow.model.base import Base
from shellflow.model.calls import Call, Event, Job, Log, Work
from shellflow.model.files import File, Flow, Version
from shellflow.model.infra import (
    Action,
    Agent,
    Container,
    Deployment,
    Network,
    Node,
    Scheduler,
    Setting,
    Worker,
)
from shellflow.model.joins import JoinState
from shellflow.model.metrics_table import Metric
from shellflow.model.network import Argument, Gate, Plug, Processor, Queue, Socket, Task
from shellflow.model.security import Login, Password, Privilege, Role, User

__all__ = [
    "Action", "Agent", "Argument", "AuditRow", "Base", "Call", "Container", "Deployment",
    "Event", "File", "Flow", "Gate", "Job", "JoinState", "Log", "Login", "Metric", "Network",
    "Node", "Password", "Plug", "Privilege", "Processor", "Queue", "Role", "Scheduler",
    "Setting", "Socket", "Task", "User", "Version", "Work", "Worker",
]  # fmt: skip
