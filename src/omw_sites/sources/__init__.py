"""Downloads from the official services into a raw folder (``omw-sites fetch``).

Above ``etl`` in the flow: ``fetch`` fills the folder that ``run --raw`` reads; ``etl``
never imports this package. One module per source (its URL template, request, licence
and how its answer is checked), :mod:`~omw_sites.sources.downloads` for HTTP (cache,
validators, resume, retries, rate limit, atomic files), :mod:`~omw_sites.sources.collect`
to run them for an area and write ``fetch_manifest.json``.
"""
