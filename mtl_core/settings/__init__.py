"""Every setting as one typed table (knobs), settings -> configs (builders), and reading a user's JSON file with limits (jsonfile)."""
