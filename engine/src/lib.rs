//! isochron engine.
