"""The API's routes, one module per resource group.

``ROUTERS`` is the order the application includes them in: the write routes on
``/collections/sites/…`` come before the generic ``/collections/{collectionId}/…`` ones,
and the OpenAPI document lists the paths in this order.
"""

from omw_sites.api.routes import (
    catalogue,
    changes,
    collections,
    enquiries,
    enquiry_form,
    items,
    landing,
    map_pages,
    queryables,
    site_pages,
    tiles,
    writes,
)

ROUTERS = (
    writes.router,
    changes.router,
    enquiries.router,
    landing.router,
    collections.router,
    queryables.router,
    items.router,
    tiles.router,
    map_pages.router,
    catalogue.router,
    enquiry_form.router,
    site_pages.router,
)

__all__ = ["ROUTERS"]
