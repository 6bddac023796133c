"""The local cluster (Dockerfile, docker-compose.yml): what its containers run besides `hpsearch`.

`hpsearch.cluster.health` is the containers' healthcheck.
"""

__all__: list[str] = []
