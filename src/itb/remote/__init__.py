"""The patient remote: the family's own programmer, paired with the pump in the patient role.

``words`` puts the pump's status and every answer into a family's words; ``session`` talks to
the pump over the encrypted link (``itb.link.client``); ``web`` is the local page that
``itb remote serve`` binds to 127.0.0.1 only.
"""
