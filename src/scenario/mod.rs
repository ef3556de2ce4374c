//! Scenario files: parsing and validation.
