"""`skewless demo`: the whole story on embedded services, in a few minutes on two cores."""

from skewless.demo.command import run_demo

__all__ = ["run_demo"]
