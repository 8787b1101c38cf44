"""jpilot's built-in plugins and the hookspecs they implement."""
