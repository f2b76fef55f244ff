"""Who owns a phone number, across both API families (one owner per number)."""
