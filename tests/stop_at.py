"""A trainer that requests a stop (as Ctrl-C does) once ``stop_at`` steps are done: how the
resume tests interrupt a run at a known step without a signal."""

from __future__ import annotations

from cpcframe.training.trainer import Trainer


class StopAt(Trainer):
    stop_at = 5

    def train_step(self, batch):
        metrics = super().train_step(batch)
        if self.step == self.stop_at:
            self.stop.requested = True
        return metrics
