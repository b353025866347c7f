from django.urls import path

from accounts import api

urlpatterns = [
    path("register", api.RegisterView.as_view()),
    path("login", api.LoginView.as_view()),
    path("guest", api.GuestJoinView.as_view()),
    path("claim", api.ClaimView.as_view()),
    path("logout", api.LogoutView.as_view()),
    path("me", api.MeView.as_view()),
    path("ws-ticket", api.WsTicketView.as_view()),
]
