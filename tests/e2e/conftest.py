from tests.e2e.e2e_peers import peers

__all__ = ["peers"]
