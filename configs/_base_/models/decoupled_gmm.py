# The decoupled head (docs/method.md), written once for the decoupled
# configs, which add their schedule (beta_iters, maintenance.reseed_start:
# fractions of the training, resolved by OnlineEMHook) and K.
# ours (docs/method.md): component maintenance, off in the paper's method
decoupled_maintenance = dict(
    reseed_rate=1 / 32,   # idle components re-seeded per batch row
    merge_within=0.1,     # means closer than the paper's eps merge
    stale_decay=0.04)     # unused components fade, per K rows seen
decoupled_gmm = dict(
    forgetting=0.01,      # eta: rho_k = (1 - eta) ** N_k
    beta_start=0.3,       # annealed E-step: beta 0.3 -> 1 over beta_iters
    beta_schedule='cosine',
    min_var=1e-4,         # sigma^2 floor
    init='uniform',       # like a joint head's random last layer
    maintenance=decoupled_maintenance)
# the paper's method alone: our options off
paper_gmm = dict(forgetting=0.01, beta_start=0.3, beta_schedule='cosine',
                 min_var=1e-4, init='uniform')
# merged into a DINO head: ours, the mixture posterior as the teacher's
# target, formed by the equal-partition (Sinkhorn) teacher before the
# first EM update
decoupled_head = dict(type='DecoupledGMMHead',
                      teacher_targets='responsibilities',
                      loss=dict(teacher_balancing='sinkhorn'))
# no learned prototypes to freeze; one EM step per optimizer step instead
em_hook = dict(type='OnlineEMHook', interval=1)
