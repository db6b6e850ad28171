//! `POST /uploads`: the code upload of a version (step 2 of `versions`).
//!
//! The client posts `multipart/form-data` with the `codeUploadFields` first, then
//! `content-type`, then `content-encoding: gzip` when gzipped, then the `file` part. No bearer
//! token is sent: the signed fields are the authorization, and they are checked before the
//! file is read. Limits follow State Backed: 1,000,000 bytes gzipped and 10,000,000 bytes
//! unzipped; both are enforced while the bytes arrive, never after buffering more.

use std::collections::BTreeMap;
use std::io::Read as _;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use multer::{Constraints, Multipart, SizeLimit};

use super::response::Reply;
use super::signing::{FIELD_EXPIRES, FIELD_SIGNATURE, FIELD_UPLOAD_ID};
use super::{body, ApiState};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::runtime::MachineCode;
use crate::store::UploadRecord;

/// Largest gzipped bundle, as State Backed publishes it.
pub(super) const MAX_GZIPPED_BUNDLE_BYTES: usize = 1_000_000;
/// Largest text field of the form (ids, signatures, content types).
const MAX_FIELD_BYTES: u64 = 4 * 1024;
/// Room for the form's fields, part headers and boundaries around the file.
const FORM_OVERHEAD_BYTES: usize = 64 * 1024;

/// Receives the form; 204 once the code is stored under its hash and linked to the upload.
pub(super) async fn receive(api: &ApiState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let max_unzipped = api.runtime.config().max_bundle_bytes;
    let max_request = max_unzipped + FORM_OVERHEAD_BYTES;
    let boundary = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                "content-type",
                "expected multipart/form-data with a boundary",
            )
        })?;
    if body::declared_length(request.headers()).is_some_and(|n| n > max_request as u64) {
        return Err(ApiError::PayloadTooLarge { limit: max_request });
    }
    let limits = SizeLimit::new()
        .whole_stream(max_request as u64)
        .per_field(MAX_FIELD_BYTES)
        .for_field("file", max_unzipped as u64);
    let mut form = Multipart::with_constraints(
        BodyDataStream::new(request.into_body()),
        boundary,
        Constraints::new().size_limit(limits),
    );

    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut received: Option<(UploadRecord, Vec<u8>)> = None;
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            let value = field.text().await.map_err(form_error)?;
            fields.insert(name, value);
            continue;
        }
        let upload = authorize(api, &fields).await?;
        let gzip = upload.gzip
            || fields
                .get("content-encoding")
                .is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
        let (limit, what) = if gzip {
            (MAX_GZIPPED_BUNDLE_BYTES, "gzipped")
        } else {
            (max_unzipped, "unzipped")
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::BundleTooLarge { what, limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        let code = if gzip {
            gunzip(Bytes::from(bytes), max_unzipped).await?
        } else {
            bytes
        };
        received = Some((upload, code));
    }
    let Some((mut upload, code)) = received else {
        return Err(ApiError::invalid("file", "the form has no file part"));
    };
    let code = MachineCode::new(code, max_unzipped)?;
    api.store.put_bundle(&code.hash, &code.bytes).await?;
    upload.code_hash = Some(code.hash.to_string());
    api.store.put_upload(&upload).await?;
    tracing::debug!(machine = %upload.machine, bytes = code.bytes.len(), "version code uploaded");
    Ok(Reply::NoContent)
}

/// Checks the signed fields that preceded the file and returns the upload they name.
async fn authorize(
    api: &ApiState,
    fields: &BTreeMap<String, String>,
) -> Result<UploadRecord, ApiError> {
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let (id, expires, signature) = (
        field(FIELD_UPLOAD_ID),
        field(FIELD_EXPIRES),
        field(FIELD_SIGNATURE),
    );
    if !api.uploads.check_upload(id, expires, signature) {
        return Err(ApiError::UploadForbidden(
            "the upload fields are missing or not signed by this server".to_owned(),
        ));
    }
    if expires.parse::<i64>().map_or(true, |at| at < now_ms()) {
        return Err(ApiError::UploadForbidden(
            "the upload fields have expired; request a new upload".to_owned(),
        ));
    }
    api.store
        .get_upload(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("upload {id}")))
}

/// Inflates `gzipped` on the blocking pool, refusing output beyond `limit_bytes`.
async fn gunzip(gzipped: Bytes, limit_bytes: usize) -> Result<Vec<u8>, ApiError> {
    let inflate = move || {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzipped[..])
            .take(limit_bytes as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::invalid("file", format!("the file is not valid gzip: {e}")))?;
        if out.len() > limit_bytes {
            return Err(ApiError::BundleTooLarge {
                what: "unzipped",
                limit: limit_bytes,
            });
        }
        Ok(out)
    };
    tokio::task::spawn_blocking(inflate)
        .await
        .map_err(|e| ApiError::Internal(format!("gunzip task failed: {e}")))?
}

fn form_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { limit } => ApiError::PayloadTooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        },
        multer::Error::FieldSizeExceeded { limit, field_name } => {
            if field_name.as_deref() == Some("file") {
                ApiError::BundleTooLarge {
                    what: "unzipped",
                    limit: usize::try_from(limit).unwrap_or(usize::MAX),
                }
            } else {
                ApiError::invalid(
                    field_name.as_deref().unwrap_or("form"),
                    format!("form field is longer than {limit} bytes"),
                )
            }
        }
        other => ApiError::invalid("body", format!("malformed multipart form: {other}")),
    }
}
