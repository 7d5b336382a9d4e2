"""`skewless demo`: the whole story on embedded services, in a few minutes on two cores."""

from skewless.demo.command import demo_command

__all__ = ["demo_command"]
