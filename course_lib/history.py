"""A training run's record, what ``fit`` returns and what checkpoints and saved results keep."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class History:
    """One record per completed epoch, ``{epoch, train_loss, test_acc, seconds, images_per_s}`` (``test_acc``
    in [0, 1]); ``status`` is ``completed``, ``diverged`` or ``interrupted``, ``message`` says why."""

    records: list[dict] = field(default_factory=list)
    status: str = "completed"
    message: str = ""
    model: str = ""
    device: str = ""
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    @property
    def train_loss(self) -> list[float]:
        """Mean training loss per image, one per epoch."""
        return [r["train_loss"] for r in self.records]

    @property
    def test_acc(self) -> list[float]:
        """Test accuracy in [0, 1], one per epoch."""
        return [r["test_acc"] for r in self.records]

    @property
    def final(self) -> dict:
        """The last epoch's record (``{}`` before the first epoch ends)."""
        return self.records[-1] if self.records else {}

    def as_dict(self) -> dict:
        """A JSON-able dict (what ``history.json`` and checkpoints hold)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """The History that :meth:`as_dict` wrote."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def __repr__(self) -> str:
        last = self.final
        tail = (f", last epoch {last['epoch']}: loss {last['train_loss']:.4f}, acc {last['test_acc']:.2%}"
                if last else "")
        return f"History({self.model or 'model'}, {len(self)} epochs, {self.status}{tail})"
