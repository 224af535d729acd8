"""The verification API for back-office systems (bylaw Articles 6 and 11)."""
