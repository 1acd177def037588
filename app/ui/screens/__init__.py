"""The console's sections (Groups, Profiles) and the help screen."""
