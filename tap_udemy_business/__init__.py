"""Singer tap for Udemy Business, built with the Meltano Singer SDK."""
