"""The papers' studies (experiments), the lessons and their check (lessons), the claims about why (claims), the statistics behind both (evidence), and the speed benchmark (bench)."""
