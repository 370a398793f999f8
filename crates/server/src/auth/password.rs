//! Argon2id password hashing. Hashing is deliberately slow (tens of
//! milliseconds) and big (19 MiB of working memory), so it runs on the
//! blocking pool, never on the async workers, at most one per core at a time,
//! in working memory that is reused: allocating 19 MiB per login left the
//! allocator holding on to every block a burst of logins had used (measured:
//! 1.6 GiB after registering 100 users at once).

use std::sync::{LazyLock, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version, ARGON2ID_IDENT};
use rand::Rng as _;
use tokio::sync::Semaphore;

/// OWASP-recommended minimum for argon2id: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;
/// A stored hash asking for more memory than this many times ours is not
/// one this server made: refused rather than allowed to allocate at will.
const MAX_MEMORY_FACTOR: usize = 4;

/// The parameters new hashes are made with.
pub fn params() -> Params {
    Params::new(MEMORY_KIB, PASSES, LANES, Some(OUTPUT_LEN)).expect("constant argon2 parameters are valid")
}

fn argon2(version: Version, params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, version, params)
}

/// Hashes a password into a PHC string (salt and parameters included),
/// with `memory` as the working memory (grown as needed, kept for reuse).
pub fn hash_in(password: &str, memory: &mut Vec<Block>) -> anyhow::Result<String> {
    let salt: [u8; SALT_LEN] = rand::rng().random();
    let params = params();
    memory.resize(params.block_count(), Block::default());
    let mut out = [0u8; OUTPUT_LEN];
    argon2(Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("hash parameters: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("hash output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the stored PHC string, computed in `memory`.
/// A malformed stored hash, or one that is not argon2id, counts as no match.
pub fn verify_in(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    if parsed.algorithm != ARGON2ID_IDENT {
        return false;
    }
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&parsed), parsed.salt, parsed.hash) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    if blocks > MAX_MEMORY_FACTOR * self::params().block_count() {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    argon2(version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, &mut memory[..blocks])
        .is_ok()
        // Output's equality is constant-time.
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Hashes with memory of its own (benchmarks, tests, the decoy).
pub fn hash(password: &str) -> anyhow::Result<String> {
    hash_in(password, &mut Vec::new())
}

/// Verifies with memory of its own.
pub fn verify(password: &str, stored: &str) -> bool {
    verify_in(password, stored, &mut Vec::new())
}

/// A hash of a password nobody has, to verify against when the username is
/// unknown, so that a login for a missing user takes as long as a real one.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password that never matches").unwrap_or_default())
}

/// One permit per core, and the working memories not in use.
struct Workspaces {
    permits: Semaphore,
    free: Mutex<Vec<Vec<Block>>>,
}

static WORKSPACES: LazyLock<Workspaces> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Workspaces { permits: Semaphore::new(cores), free: Mutex::new(Vec::new()) }
});

/// Runs `work` on the blocking pool with a reused working memory, once a
/// core is free for it (others wait their turn, in order).
async fn in_workspace<T: Send + 'static>(work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> Option<T> {
    let _permit = WORKSPACES.permits.acquire().await.ok()?;
    let mut memory = WORKSPACES.free.lock().map(|mut free| free.pop()).ok().flatten().unwrap_or_default();
    let (result, memory) = tokio::task::spawn_blocking(move || {
        let result = work(&mut memory);
        (result, memory)
    })
    .await
    .ok()?;
    if let Ok(mut free) = WORKSPACES.free.lock() {
        free.push(memory);
    }
    Some(result)
}

/// Hashes on the blocking pool (see [`in_workspace`]).
pub async fn hash_async(password: String) -> anyhow::Result<String> {
    in_workspace(move |memory| hash_in(&password, memory)).await.unwrap_or_else(|| Err(anyhow::anyhow!("hashing was interrupted")))
}

/// Verifies on the blocking pool (see [`in_workspace`]).
pub async fn verify_async(password: String, stored: String) -> bool {
    in_workspace(move |memory| verify_in(&password, &stored, memory)).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let stored = hash("correct horse").expect("hash");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse", &stored));
        assert!(!verify("correct horse", "not a phc string"));
        assert_ne!(stored, hash("correct horse").expect("hash"), "salted");
    }

    /// Hashes made before working memory was reused (by the argon2 crate's
    /// own PHC hasher) still verify, and ours verify with it.
    #[test]
    fn compatible_with_the_argon2_crates_own_phc_strings() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = argon2(Version::V0x13, Params::new(MEMORY_KIB, PASSES, LANES, None).expect("params"))
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string();
        assert!(verify("correct horse", &theirs));
        assert!(!verify("correct horsE", &theirs));
        let ours = hash("correct horse").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(argon2(Version::V0x13, params()).verify_password(b"correct horse", &parsed).is_ok());
    }

    #[test]
    fn foreign_or_greedy_hashes_are_refused() {
        // argon2i, and argon2id asking for 1 GiB.
        assert!(!verify("x", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFy"));
        assert!(!verify("x", "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFy"));
    }

    #[tokio::test]
    async fn concurrent_hashes_reuse_a_bounded_set_of_memories() {
        let tasks: Vec<_> = (0..8).map(|i| tokio::spawn(hash_async(format!("password {i}")))).collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let stored = task.await.expect("task").expect("hash");
            assert!(verify_async(format!("password {i}"), stored.clone()).await);
            assert!(!verify_async(format!("password {}", i + 1), stored).await);
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let kept = WORKSPACES.free.lock().expect("lock").len();
        assert!(kept >= 1 && kept <= cores, "{kept} memories kept for {cores} cores");
    }
}
