"""`hvl serve`: a search and review web app over an `hvl index` (and `hvl zeroshot --predictions`).

A FastAPI app (:mod:`.app`) with pydantic request / response schemas (:mod:`.schemas`, OpenAPI at ``/docs``),
the loaded index and model behind one lock (:mod:`.engine`), thumbnails decoded once and cached on disk
(:mod:`.media`), a query set grown from testers' judgements in ``hvl bugsearch-eval``'s format
(:mod:`.queryset`), zero-shot predictions for the review page (:mod:`.review`), and the app built from
``hvl serve``'s options and served (:mod:`.server`). The pages are plain HTML/CSS/JS in ``static/``. Part of :mod:`hvl.core.search`: may import
:mod:`hvl.core.models`, :mod:`hvl.core.data` and the leaves; never evaluation or the CLI.
"""
from ..._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["Limits", "create_app"], "app"),
    **dict.fromkeys(["SearchEngine"], "engine"),
    **dict.fromkeys(["QuerySetStore", "query_id"], "queryset"),
    **dict.fromkeys(["ReviewSet", "load_review"], "review"),
    **dict.fromkeys(["ThumbnailCache"], "media"),
    **dict.fromkeys(["ServeOptions", "build_app", "serve"], "server"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
