//! Assembly of the server.
