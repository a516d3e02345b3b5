"""Judge-based reasoning quality: judges behind one interface, and the judge stage."""
