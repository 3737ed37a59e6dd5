"""Pictures of results for people: contact sheets of the rasters a run produced."""
