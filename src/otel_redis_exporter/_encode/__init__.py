"""Records to stream entries and back: the flat encoding (``flat``, in C where ``compiled`` says it
may), the OTLP ones (``otlp``), the choice between them (``select``), and the decoded entry
(``entry``)."""
