# The decoupled method of every decoupled DINO config (docs/method.md): the
# paper's online EM plus our options, measured on Fashion-MNIST. Each recipe
# adds its schedule: beta_iters and reseed_start (its lr warm-up), and its K.
decoupled_gmm = dict(
    forgetting=0.01,      # eta: rho_k = (1 - eta) ** N_k
    beta_start=0.3,       # annealed E-step: beta 0.3 -> 1 over beta_iters
    beta_schedule='cosine',
    min_var=1e-4,         # sigma^2 floor
    init='uniform',       # like a joint head's random last layer
    reseed_rate=1 / 32,   # ours: idle components re-seeded per batch row
    merge_within=0.1,     # ours: means closer than the paper's eps merge
    stale_decay=0.02)     # ours: unused components fade, per K rows seen
# the paper's method alone: our options off
paper_gmm = dict(forgetting=0.01, beta_start=0.3, beta_schedule='cosine',
                 min_var=1e-4, init='uniform')
# ours: the mixture posterior as the teacher's target; the equal-partition
# (Sinkhorn) teacher forms the targets before the first EM update
decoupled_targets = dict(teacher_targets='responsibilities')
decoupled_loss = dict(teacher_balancing='sinkhorn')
