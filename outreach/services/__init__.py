"""Outreach services (domain.md 4); each module's docstring states its state machine.

- outbox: attempt rows, the exactly-once send, outcomes, stale sends, delivery reports
- calls: "outreach started" through the policy; an agent's call logged in one step
- appointments: book, confirm, complete, no-show, cancel, waitlist
- sequence: the scheduled sweeps (gap sequence, reminders, recovery, check-ins, dormant)
- inbound: inbound texts and voicemails (callbacks)
- letters: printable letter batches
- templates: message templates (content-class check)
"""
