"""The rollout controller: one leader-locked process that decides every staged rollout step and
applies scheduled changes (``python -m rollout run``). The decisions themselves are pure
(``ledger.rollout``); this package is the loop around them."""
