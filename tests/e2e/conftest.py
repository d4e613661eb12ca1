from e2e_peers import peers

__all__ = ["peers"]
