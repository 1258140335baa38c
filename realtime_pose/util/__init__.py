"""Small services every floor uses: crash-safe writes (:mod:`.safe_write`), supervised threads
(:mod:`.supervision`), latency statistics (:mod:`.stats`), validation messages naming the file and
field (:mod:`.validation`), the machine's description (:mod:`.machine`), a progress line
(:mod:`.progress`) and where the package's assets are (:mod:`.paths`).
"""
