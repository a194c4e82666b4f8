"""Jobs: AI collectives a scheduler declares so their flows are placed jointly."""
