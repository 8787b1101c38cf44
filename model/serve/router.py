"""Session affinity for the pool, built on Ray Serve's request-router API.

A request's `x-session-id` header (Serve puts it in `RequestMetadata.session_id`) picks
one replica on Serve's consistent-hash ring, so a document's requests keep hitting the
replica whose prefix cache holds its KV. When that replica is full (`max_ongoing_requests`)
or gone, the request goes to the least-loaded of the others; Serve's queue-length probes
choose among a rank. Requests without a session go to the least-loaded replica overall.
The ring itself, and its rebuild when replicas come and go, are Serve's
(`ConsistentHashRouter`); only the ranking differs.
"""

from __future__ import annotations

from ray.serve.experimental.consistent_hash_router import ConsistentHashRouter
from ray.serve.request_router import PendingRequest, RunningReplica

ROUTER_PATH = "jpilot.model.serve.router.SessionAffinityRouter"


class SessionAffinityRouter(ConsistentHashRouter):
    """Rank a session's ring replica first, then every other replica as one rank."""

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        """Return [[session's replica], [the rest]], or [all] without a session id."""
        if not candidate_replicas:
            return []
        if pending_request is not None:  # back off between rounds when every replica is full
            pending_request.routing_context.should_backoff = True
        session = pending_request.metadata.session_id if pending_request else None
        if not session:
            return [candidate_replicas]  # the least loaded of all, by queue length
        owner = next(iter(self._lookup_ranked_replicas(session)), None)
        first = [r for r in candidate_replicas if r.replica_id == owner]
        rest = [r for r in candidate_replicas if r.replica_id != owner]
        return [rank for rank in (first, rest) if rank]
