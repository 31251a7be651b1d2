"""The VPC route table and AWS's path selection (docs/aws.md §7): sans-I/O."""

from .paths import (MED_OTHER, MED_PRIMARY, Advertisement, Changes, ConnectionPlan, Learned, Path,
                    Route, Source)
from .table import VpcRouteTable, choose_primary

__all__ = ["Advertisement", "Changes", "ConnectionPlan", "Learned", "MED_OTHER", "MED_PRIMARY", "Path",
           "Route", "Source", "VpcRouteTable", "choose_primary"]
