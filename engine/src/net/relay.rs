//! UDP impairment relay (to be written).
